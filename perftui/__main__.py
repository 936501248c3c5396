from perftui.cli import entry

entry()
