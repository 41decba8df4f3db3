"""The Airflow hook that builds GitHub clients from the ``trender_github`` connection."""

from __future__ import annotations

from typing import Any

from airflow.providers.http.hooks.http import HttpHook

from trender.github.client import GitHubClient, StaticToken

DEFAULT_API_URL = "https://api.github.com"


class TrenderGitHubHook(HttpHook):
    """
    Build GitHub clients from an HTTP connection.

    The connection's host is the API base URL (change it for GitHub Enterprise Server or the
    replay server); its password holds a personal access token, or is empty for anonymous use.

    :param github_conn_id: the Airflow connection to read.
    """

    conn_name_attr = "github_conn_id"
    default_conn_name = "trender_github"
    conn_type = "http"
    hook_name = "Trender GitHub"

    def __init__(self, github_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(method="GET", http_conn_id=github_conn_id, **kwargs)
        self.github_conn_id = github_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel the connection form for GitHub."""
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {
                "host": "API base URL",
                "login": "OAuth client id (optional)",
                "password": "Personal access token or OAuth client secret",
            },
            "placeholders": {"host": DEFAULT_API_URL},
        }

    def api_base_url(self) -> str:
        """Return the API base URL the connection names."""
        connection = self.get_connection(self.github_conn_id)
        if not connection.host:
            return DEFAULT_API_URL
        self._set_base_url(connection)
        return self.base_url.rstrip("/")

    def get_client(self, **client_options: Any) -> GitHubClient:
        """Return a GitHub client authenticated with the connection's token, if it has one."""
        connection = self.get_connection(self.github_conn_id)
        return GitHubClient(
            self.api_base_url(), StaticToken(connection.password or None), **client_options
        )
