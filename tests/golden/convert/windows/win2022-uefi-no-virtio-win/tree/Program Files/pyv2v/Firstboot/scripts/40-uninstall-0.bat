@echo off
rem VMware Tools
MsiExec.exe /X{FE2F6A2C-196E-4210-9C04-2B1BC21F07EF} /qn /norestart REBOOT=ReallySuppress
