#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# meson install script: installs batchd.conf (argument 1) into the directory given as argument 2 (under
# $DESTDIR) unless a batchd.conf is already there, so an edited configuration is never overwritten.
set -eu
src=$1
dir=${DESTDIR:-}$2
if [ -e "$dir/batchd.conf" ]; then
        echo "Keeping the existing $dir/batchd.conf (the shipped one is $src)."
        exit 0
fi
install -d -m 0755 "$dir"
install -m 0644 "$src" "$dir/batchd.conf"
echo "Installing $dir/batchd.conf"
