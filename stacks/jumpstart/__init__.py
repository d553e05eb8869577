"""JumpStart facts the models stack deploys from: a committed per-region table and its validated loader."""
