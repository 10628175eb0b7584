@echo off
pnputil.exe -i -a "%SystemRoot%\Drivers\VirtIO\*.inf"
