#!/usr/bin/perl
# fake tarball uninstaller
