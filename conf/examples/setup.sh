#!/bin/sh
# setup.sh DESTDIR [USER]
#
# Copies these examples to DESTDIR (jobs.d/ and scripts/) and makes them loadable: replaces @EXAMPLESDIR@
# in the job files by DESTDIR, @USER@ by USER (default: whoever runs this script) and @PATH@ by $STEP_PATH
# (default: /usr/local/bin:/usr/bin:/bin), and sets the modes
# batchd insists on (nothing writable by group or others). Point batchd at DESTDIR/jobs.d with
#     jobs_dir = "DESTDIR/jobs.d";
# in its main configuration file. The files belong to whoever runs this script, which must be the user
# batchd runs as (root for the system service).
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
        echo "usage: $0 DESTDIR [USER]" >&2
        exit 2
fi
src=$(cd "$(dirname "$0")" && pwd)
user=${2:-$(id -un)}
# The PATH the example steps run with: where they find batchctl (a build tree's ctl/ when not installed).
step_path=${STEP_PATH:-/usr/local/bin:/usr/bin:/bin}

# Both end up in sed replacements delimited by '|' and inside libconfig strings.
case $1$user$step_path in
        *'|'* | *'&'* | *\\* | *'"'*)
                printf '%s\n' "DESTDIR and USER must not contain | & \\ or \"" >&2
                exit 2
                ;;
esac

mkdir -p "$1"
dest=$(cd "$1" && pwd)

mkdir -p "$dest/jobs.d" "$dest/scripts"
chmod 0755 "$dest/jobs.d" "$dest/scripts"
for f in "$src"/scripts/*.sh; do
        cp "$f" "$dest/scripts/"
        chmod 0755 "$dest/scripts/$(basename "$f")"
done
for f in "$src"/jobs.d/*.conf; do
        out=$dest/jobs.d/$(basename "$f")
        sed -e "s|@EXAMPLESDIR@|$dest|g" -e "s|@USER@|$user|g" -e "s|@PATH@|$step_path|g" "$f" >"$out"
        chmod 0644 "$out"
done
echo "examples installed in $dest; set jobs_dir = \"$dest/jobs.d\"; in batchd.conf"
