# shellcheck shell=bash
# The banner printed once the system is up (sourced by scripts/run and scripts/cluster).
# banner ISSUER MCP_URL [LINE…]: each LINE is printed after the authz line (for the cluster's
# replicas); the last line names what Ctrl-C stops ($BANNER_STOPS, default "both servers").
# $RELEASE (scripts/lib/cargo.sh) is where the command-line client was built.
banner() {
  local issuer="$1" mcp="$2" line
  shift 2
  {
    printf '\n  ✔ authz         %s   (metadata: %s/.well-known/oauth-authorization-server)\n' \
      "$issuer" "$issuer"
    for line in "$@"; do printf '                  %s\n' "$line"; done
    printf '  ✔ mcp-resource  %s   (metadata: %s/.well-known/oauth-protected-resource/mcp)\n' \
      "$mcp" "${mcp%/mcp}"
    cat <<TXT

  Get a token and call a tool (copy-paste):

    TOKEN=\$(curl -s -d grant_type=password -d client_id=mcp-cli -d username=testuser \\
      -d 'password=TestPass123!' $issuer/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
    curl -s $mcp -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
      -H 'Accept: application/json, text/event-stream' \\
      -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_user_profile","arguments":{}}}'

  MCP clients (Claude, Inspector, the SDKs): point them at $mcp. They discover the
  authorization server from the 401, register themselves and open the sign-in page in
  your browser (demo users: admin/admin123, testuser/TestPass123!, readonly/ReadOnly123!).
  Or try the command-line client in another terminal:  ${RELEASE:-./target/release}/mcp-auth-client
  (demo; also: interactive, validate).
  Ctrl-C stops ${BANNER_STOPS:-both servers}.
TXT
  } >&2
}
