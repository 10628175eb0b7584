@echo off
rem pyv2v first-boot runner: runs each queued script once, in name order.
setlocal EnableExtensions EnableDelayedExpansion
set fb=%~dp0
set log=%fb%log.txt
if not exist "%fb%scripts-done" mkdir "%fb%scripts-done"
for %%f in ("%fb%scripts\*.bat") do (
  echo %date% %time% pyv2v-firstboot: running %%~nxf >> "%log%"
  call "%%~f" >> "%log%" 2>&1
  echo %date% %time% pyv2v-firstboot: %%~nxf exited with status !errorlevel! >> "%log%"
  move /y "%%~f" "%fb%scripts-done\" > nul
)
echo %date% %time% pyv2v-firstboot: all scripts done, removing the startup script registration >> "%log%"
del /f /q /a "C:\Windows\System32\GroupPolicy\Machine\Scripts\scripts.ini" >> "%log%" 2>&1
del /f /q /a "C:\Windows\System32\GroupPolicy\gpt.ini" >> "%log%" 2>&1
rd "C:\Windows\System32\GroupPolicy\Machine\Scripts\Startup" >> "%log%" 2>&1
rd "C:\Windows\System32\GroupPolicy\Machine\Scripts" >> "%log%" 2>&1
rd "C:\Windows\System32\GroupPolicy\Machine" >> "%log%" 2>&1
rd "C:\Windows\System32\GroupPolicy" >> "%log%" 2>&1
echo %date% %time% pyv2v-firstboot: done, removing firstboot.bat >> "%log%"
(goto) 2>nul & del /f /q "%~f0"
