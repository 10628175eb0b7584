@echo off
"%SystemRoot%\Drivers\VirtIO\blnsvr.exe" -i
