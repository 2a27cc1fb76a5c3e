#!/bin/sh
# An EDITOR for `kubectl edit` that makes the object invalid (a name the server refuses).
sed -i 's/^  name: edited-cm$/  name: Edited_CM/' "$1"
