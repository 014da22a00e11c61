-- ID-JAG subject links (issue 24 item 11): which local user an identity provider's subject
-- (`iss` + `sub`, the only pair an IdP guarantees to be stable: OIDC Core §2) speaks for. The
-- default subject mapping (`subject_claim = "sub"`); created, listed and removed by operators
-- (`authz id-jag link | unlink | links`), each change audited.
CREATE TABLE id_jag_links (
    issuer     TEXT NOT NULL,               -- the trusted issuer, as configured (compared exactly)
    subject    TEXT NOT NULL,               -- the IdP's `sub`
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,               -- the actor (cli, …)
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX id_jag_links_user ON id_jag_links(user_id);
