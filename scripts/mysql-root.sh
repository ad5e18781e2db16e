#!/usr/bin/env bash
# Build once, then reuse, a Debian sid root holding MySQL 9.7 (mysql-server-core, mysql-client)
# and percona-toolkit 3.7.1, and print the path of a `mysqld` that runs it from this machine.
#
# Why: the tests run on MariaDB 10.11 (Debian bookworm) and, through this, on real MySQL 9.7,
# which only Debian's sid suite packages. The kit starts it exactly as it starts a locally
# installed mysqld (TUTORIAL_MYSQLD=<printed path>): --initialize-insecure, then serve.
#
# The root is kept outside the clone, in $TUTORIAL_MYSQL_ROOT (default below), so that the next
# run on this machine reuses it. It is built in a temporary folder beside it and renamed into
# place when complete: a folder at that path is always a finished build.
# Needs root (mmdebstrap --mode=root) the first time only; then: any user (and whoever may
# write to the cache, once, when the wrappers below change).
set -euo pipefail

# What is built here is the folder's name: change the name when what is in the root changes.
cache=$(realpath -m "${TUTORIAL_MYSQL_ROOT:-/var/cache/versioned-migrations-tutorial/mysql-9.7}")
fail() { echo "error: mysql-root: $*" >&2; exit 1; }
trap 'fail "stopped at line $LINENO of $0"' ERR  # any other failure: one line too

# The wrappers in usr/bin change without the root changing: a cache whose wrappers-version
# differs gets new wrappers only. Add one to it whenever write_wrappers writes something else.
wrappers_version=2

# Write the wrappers into $1/usr/bin, naming the root by its final path, $cache/root (they run
# even with an empty PATH, as tests do). Every tool runs with the root's own dynamic loader and
# libraries, not in a chroot: every path it is given (data directory, socket, log, a
# --defaults-file) is then the same inside and out, and no mount or privilege is needed.
# Each file is written beside its place, under a name of this run's, and renamed into it, so
# that a run at the same time sees the old wrapper or the new, never half of one; the version
# stamp comes last.
write_wrappers() {
  local dir=$1 root=$cache/root loaders libdirs loader libs tool
  shopt -s nullglob
  loaders=("$dir"/root/usr/lib64/ld-linux-*.so.* "$dir"/root/usr/lib/ld-linux-*.so.*)
  libdirs=("$dir"/root/usr/lib/*-linux-gnu)
  shopt -u nullglob
  [ ${#loaders[@]} -gt 0 ] && [ ${#libdirs[@]} -gt 0 ] || fail "no dynamic loader in the sid root"
  loader=$root/${loaders[0]#"$dir/root/"} libs=$root/${libdirs[0]#"$dir/root/"}
  # mysqld and mysql sit in usr/bin of a folder whose share/ and lib/ are the root's, so that
  # the --basedir=<wrapper>/../.. the kit passes is where mysqld's error messages and charsets
  # are. LIBMYSQL_PLUGIN_DIR: the client's authentication plugins (mysql_native_password, which
  # MariaDB's root uses) are files, looked for in /usr/lib/mysql/plugin unless told.
  for tool in mysqld:usr/sbin/mysqld mysql:usr/bin/mysql; do
    cat >"$dir/usr/bin/.${tool%%:*}.$$" <<WRAPPER
#!/bin/sh
# ${tool%%:*} from the MySQL 9.7 root (scripts/mysql-root.sh).
LIBMYSQL_PLUGIN_DIR="$root/usr/lib/mysql/plugin" exec "$loader" --library-path "$libs" --argv0 "\$0" "$root/${tool#*:}" "\$@"
WRAPPER
  done
  # percona-toolkit 3.7.1 (bookworm's 3.2.1 fails on MySQL 9.7: SHOW SLAVE HOSTS is gone) is
  # Perl. The root's perl looks for modules in the absolute paths it was built with
  # (/usr/share/perl5, ...), which here are the host's: -M puts a BEGIN block before the tool
  # that moves each of them into the root ("use 5.0" loads no file), so no module of the
  # host's perl is ever read. PERL5LIB and PERL5OPT would add the host's: unset. DBD::mysql
  # uses libmariadb, whose authentication plugins (caching_sha2_password, MySQL 9.7's default)
  # are files, looked for where MARIADB_PLUGIN_DIR says.
  cat >"$dir/usr/bin/.pt-online-schema-change.$$" <<WRAPPER
#!/bin/sh
# pt-online-schema-change 3.7.1 from the MySQL 9.7 root (scripts/mysql-root.sh).
unset PERL5LIB PERLLIB PERL5OPT
MARIADB_PLUGIN_DIR="$libs/libmariadb3/plugin" exec "$loader" --library-path "$libs" --argv0 "\$0" "$root/usr/bin/perl" '-M5.0; BEGIN { @INC = map { q{$root} . \$_ } @INC }' "$root/usr/bin/pt-online-schema-change" "\$@"
WRAPPER
  for tool in mysqld mysql pt-online-schema-change; do
    chmod 755 "$dir/usr/bin/.$tool.$$"
    mv -f "$dir/usr/bin/.$tool.$$" "$dir/usr/bin/$tool"
  done
  echo "$wrappers_version" >"$dir/.wrappers-version.$$"
  mv -f "$dir/.wrappers-version.$$" "$dir/wrappers-version"
}

if [ ! -d "$cache" ]; then
  command -v mmdebstrap >/dev/null || fail "mmdebstrap is not installed (apt-get install mmdebstrap)"
  [ "$(id -u)" = 0 ] || fail "building $cache needs root (mmdebstrap --mode=root); run it as root once"
  # The machine's own Debian mirror, as apt knows it (never a host name written here).
  mirror() { apt-get indextargets --format '$(REPO_URI)' 'Identifier: Packages' 'Label: Debian' | head -n1; }
  url=$(mirror)
  [ -n "$url" ] || { apt-get update -qq >/dev/null 2>&1 || true; url=$(mirror); }
  [ -n "$url" ] || fail "no Debian mirror in apt's sources (/etc/apt/sources.list.d/) to take sid from"
  mkdir -p "$(dirname "$cache")"
  build=$(mktemp -d "$cache.building.XXXXXX")
  log=$build.log
  trap 'rm -rf "$build" "$log"' EXIT
  # sid's Release file is often past its Valid-Until date on a mirror snapshot: accept it.
  if ! mmdebstrap --mode=root --variant=apt \
        --aptopt='Acquire::Check-Valid-Until "false"' \
        --include=mysql-server-core,mysql-client,percona-toolkit \
        sid "$build/root" "$url" >"$log" 2>&1; then
    # apt's own reason ("E: Unable to locate package ..."), not mmdebstrap's summary of it.
    why=$( (grep '^E: ' "$log" | grep -v -e 'setup failed' -e 'mmdebstrap failed' || tail -n1 "$log") | head -n1)
    fail "could not build the sid root with mysql-server-core, mysql-client, percona-toolkit: $why"
  fi
  mkdir -p "$build/usr/bin"
  ln -s ../root/usr/share "$build/usr/share"
  ln -s ../root/usr/lib "$build/usr/lib"
  write_wrappers "$build"
  chmod 755 "$build"
  # The wrappers name the final path: check the binary itself runs here before moving it there.
  shopt -s nullglob
  loaders=("$build"/root/usr/lib64/ld-linux-*.so.* "$build"/root/usr/lib/ld-linux-*.so.*)
  libdirs=("$build"/root/usr/lib/*-linux-gnu)
  "${loaders[0]}" --library-path "${libdirs[0]}" "$build/root/usr/sbin/mysqld" --version \
    >/dev/null 2>&1 || fail "the root's mysqld does not run on this machine"
  mv -T "$build" "$cache" 2>/dev/null || [ -d "$cache" ] || fail "could not move the root to $cache"
  trap - EXIT
  rm -rf "$build" "$log"
elif [ "$(cat "$cache/wrappers-version" 2>/dev/null)" != "$wrappers_version" ]; then
  # A root built by an earlier version of this script: only its wrappers are written again.
  [ -w "$cache" ] && [ -w "$cache/usr/bin" ] \
    || fail "the tool wrappers in $cache are out of date; run this once as root to update them"
  trap 'rm -f "$cache"/usr/bin/.*."$$" "$cache/.wrappers-version.$$"' EXIT  # even on Ctrl-C
  write_wrappers "$cache"
fi
echo "$cache/usr/bin/mysqld"
