# shellcheck shell=bash
# Where cargo puts what it builds, for the scripts that build and then start binaries
# (scripts/run, scripts/cluster, scripts/bench-*). Cargo decides, and `cargo metadata` reports
# its choice: CARGO_TARGET_DIR, else build.target-dir from a .cargo/config.toml, else ./target.
# The answer is exported as CARGO_TARGET_DIR (absolute), so the script's own `cargo build`
# writes exactly there and the script starts what it has just built, never a stale or missing
# ./target/release/… left by another setting.
#
# use_target_dir: sets TARGET_DIR and RELEASE (its release/ directory: the release binaries and
# examples/; written ./target/release when it is inside the current directory, as the scripts
# print it).
# shellcheck disable=SC2034 # RELEASE is for the scripts that source this file
use_target_dir() {
  TARGET_DIR="$(cargo metadata --format-version 1 --no-deps \
    | sed -nE 's/.*"target_directory":"([^"]*)".*/\1/p')"
  if [ -z "$TARGET_DIR" ]; then
    echo "cargo metadata named no target directory" >&2
    return 1
  fi
  export CARGO_TARGET_DIR="$TARGET_DIR"
  RELEASE="$TARGET_DIR/release"
  case "$TARGET_DIR" in "$PWD"/*) RELEASE="./${TARGET_DIR#"$PWD"/}/release" ;; esac
}

# print_binaries_if_asked ARG NAME…: when ARG is --print-binaries, print the absolute path of
# each release binary NAME, one a line (what the script would start; nothing is built or
# started), and exit.
print_binaries_if_asked() {
  [ "$1" = --print-binaries ] || return 0
  shift
  local name
  for name in "$@"; do printf '%s/release/%s\n' "$TARGET_DIR" "$name"; done
  exit 0
}
