# Astronomer image for `astro dev start` and `astro deploy`.
#
# Astro Runtime 3.3 is Astronomer's build of Apache Airflow 3.3 (tags read <airflow major.minor>-
# <runtime patch>). Its build triggers do the rest: install packages.txt with apt and
# requirements.txt with pip, then copy this project to /usr/local/airflow, where dags/, plugins/
# and include/ sit side by side as Trender expects. Check which Airflow a tag ships with
# `docker run --rm <image> airflow version` before moving to another tag.
FROM astrocrpublic.azurecr.io/runtime:3.3-2
