#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A desktop-style client of batchd for test-dbus-object-manager.py: GLib's own GDBusObjectManagerClient (python3-gi)
on its own GLib main loop, following the object tree and the properties from signals alone, as a GNOME widget or a
service would, never re-reading them.

    gio_object_manager_client.py BUS_ADDRESS

Reads one command a line on stdin and answers with one JSON line on stdout:
  check   GetManagedObjects, called asynchronously so that the reply is handled after every signal batchd sent
          before it (one connection, delivered in order), and answered with {"cached": the client's objects and
          cached properties, "managed": the reply, "removed": {path: the cached properties of each object at the
          moment the client saw it go}}.
  quit    exits.
Prints {"ready": true} once the manager client has its first view of the tree."""

import json
import sys

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

BUS_NAME = "org.batchd.Batch1"
MANAGER_PATH = "/org/batchd/Batch1"


def reply(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def cached_object(obj):
    out = {}
    for proxy in obj.get_interfaces():
        out[proxy.get_interface_name()] = {name: proxy.get_cached_property(name).unpack()
                                           for name in proxy.get_cached_property_names() or []}
    return out


def main():
    address = sys.argv[1]
    loop = GLib.MainLoop()
    conn = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    manager = Gio.DBusObjectManagerClient.new_sync(conn, Gio.DBusObjectManagerClientFlags.NONE, BUS_NAME,
                                                   MANAGER_PATH, None, None)
    removed = {}

    def on_object_removed(_manager, obj):
        removed[obj.get_object_path()] = cached_object(obj)

    manager.connect("object-removed", on_object_removed)

    def on_managed_objects(source, result):
        try:
            (managed,) = source.call_finish(result).unpack()
        except GLib.Error as e:
            reply({"error": e.message})
            return
        reply({"cached": {o.get_object_path(): cached_object(o) for o in manager.get_objects()},
               "managed": managed, "removed": removed})

    def on_stdin(channel, condition):
        line = sys.stdin.readline()
        command = line.strip()
        if not line or command == "quit":
            loop.quit()
            return False
        if command == "check":
            conn.call(BUS_NAME, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", None,
                      GLib.VariantType.new("(a{oa{sa{sv}}})"), Gio.DBusCallFlags.NONE, -1, None,
                      on_managed_objects)
        else:
            reply({"error": "unknown command %r" % command})
        return True

    GLib.io_add_watch(GLib.IOChannel.unix_new(sys.stdin.fileno()), GLib.PRIORITY_DEFAULT,
                      GLib.IOCondition.IN | GLib.IOCondition.HUP, on_stdin)
    reply({"ready": True, "owner": manager.get_name_owner()})
    loop.run()


if __name__ == "__main__":
    main()
