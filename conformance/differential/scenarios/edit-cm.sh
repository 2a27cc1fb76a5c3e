#!/bin/sh
# An EDITOR for `kubectl edit`: changes data.a to "edited" and adds a label.
sed -i -e 's/^  a: .*/  a: edited/' -e 's/^  name: edited-cm$/  name: edited-cm\n  labels:\n    touched: "yes"/' "$1"
