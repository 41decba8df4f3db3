"""Airflow hooks of Trender."""
