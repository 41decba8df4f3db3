-- Migration: applied once, recorded in schema_migrations.
-- Encrypted GitHub OAuth credentials: one row per credential (by default the connection id).
-- This row is the authoritative copy of a rotating token pair: a refresh locks it
-- (select ... for update), re-reads it, and commits the new pair before using it.
-- Token columns hold Fernet ciphertexts; key_fingerprint names the key that wrote them.

create table if not exists github_oauth_tokens (
    credential_name          text        primary key,
    auth_type                text        not null default 'oauth',
    access_token_encrypted   text,
    refresh_token_encrypted  text,
    access_expires_at        timestamptz,
    refresh_expires_at       timestamptz,
    scope                    text,
    key_fingerprint          text        not null,
    created_at               timestamptz not null default now(),
    updated_at               timestamptz not null default now(),
    updated_by_run           text,
    constraint github_oauth_tokens_auth_type_check check (auth_type in ('oauth')),
    constraint github_oauth_tokens_has_token_check
        check (access_token_encrypted is not null or refresh_token_encrypted is not null)
);
