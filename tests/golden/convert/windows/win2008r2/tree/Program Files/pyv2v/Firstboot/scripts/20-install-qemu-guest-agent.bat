@echo off
msiexec.exe /i "C:\Program Files\pyv2v\Firstboot\qemu-ga-x86_64.msi" /qn /norestart /l+*vx "%~dp0..\qemu-ga-install.log"
