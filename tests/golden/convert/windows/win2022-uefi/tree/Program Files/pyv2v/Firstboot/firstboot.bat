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
