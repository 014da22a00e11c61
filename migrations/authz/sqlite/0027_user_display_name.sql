-- Issue 26: the name an upstream provider or the directory asserts (OIDC `name`, LDAP
-- `displayName`), refreshed at every sign-in through it; released as the `name` claim with the
-- `profile` scope (the username when unset).
ALTER TABLE users ADD COLUMN display_name TEXT;
