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
# Needs root (mmdebstrap --mode=root) the first time only; then: any user.
set -euo pipefail

# What is built here is the folder's name: change the name when what is built changes.
cache=$(realpath -m "${TUTORIAL_MYSQL_ROOT:-/var/cache/versioned-migrations-tutorial/mysql-9.7}")
fail() { echo "error: mysql-root: $*" >&2; exit 1; }
trap 'fail "stopped at line $LINENO of $0"' ERR  # any other failure: one line too

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
  # mysqld and the mysql client run with the root's own dynamic loader and libraries, not in a
  # chroot: every path they are given (data directory, socket, log) is then the same inside and
  # out, wherever TUTORIAL_SERVER_DIR points, and no mount or privilege is needed to run them.
  # The wrappers sit in usr/bin of a folder whose share/ and lib/ are the root's, so that the
  # --basedir=<wrapper>/../.. the kit passes is where mysqld's error messages and charsets are.
  # They name the root by its final path (they run even with an empty PATH, as tests do).
  mkdir -p "$build/usr/bin"
  ln -s ../root/usr/share "$build/usr/share"
  ln -s ../root/usr/lib "$build/usr/lib"
  shopt -s nullglob
  loaders=("$build"/root/usr/lib64/ld-linux-*.so.* "$build"/root/usr/lib/ld-linux-*.so.*)
  libdirs=("$build"/root/usr/lib/*-linux-gnu)
  [ ${#loaders[@]} -gt 0 ] && [ ${#libdirs[@]} -gt 0 ] || fail "no dynamic loader in the sid root"
  loader=${loaders[0]#"$build/root/"} libs=${libdirs[0]#"$build/root/"}
  # LIBMYSQL_PLUGIN_DIR: the client's authentication plugins (mysql_native_password, which
  # MariaDB's root uses) are files, looked for in /usr/lib/mysql/plugin unless told.
  for tool in mysqld:usr/sbin/mysqld mysql:usr/bin/mysql; do
    printf '#!/bin/sh\n# %s from the MySQL 9.7 root (scripts/mysql-root.sh).\nLIBMYSQL_PLUGIN_DIR="%s" exec "%s" --library-path "%s" --argv0 "$0" "%s" "$@"\n' \
      "${tool%%:*}" "$cache/root/usr/lib/mysql/plugin" "$cache/root/$loader" "$cache/root/$libs" \
      "$cache/root/${tool#*:}" >"$build/usr/bin/${tool%%:*}"
  done
  # percona-toolkit is Perl, which reads its modules from absolute paths: it runs in the root
  # (chroot, so as root). bookworm's 3.2.1 fails on MySQL 9.7 (SHOW SLAVE HOSTS is gone).
  printf '#!/bin/sh\n# percona-toolkit 3.7.1 from the sid root (scripts/mysql-root.sh).\nexec /usr/sbin/chroot "%s" /usr/bin/pt-online-schema-change "$@"\n' \
    "$cache/root" >"$build/usr/bin/pt-online-schema-change"
  chmod 755 "$build" "$build"/usr/bin/*
  # The wrappers name the final path: check the binary itself runs here before moving it there.
  "$build/root/$loader" --library-path "$build/root/$libs" "$build/root/usr/sbin/mysqld" --version \
    >/dev/null 2>&1 || fail "the root's mysqld does not run on this machine"
  mv -T "$build" "$cache" 2>/dev/null || [ -d "$cache" ] || fail "could not move the root to $cache"
  trap - EXIT
  rm -rf "$build" "$log"
fi
echo "$cache/usr/bin/mysqld"
