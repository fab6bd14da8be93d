@echo off
rem Install edge-extract from this offline bundle (Windows): runs install.ps1 past the script policy.
rem A bundle built on Linux cannot install here; install.ps1 explains how to build a Windows one.
powershell -NoProfile -ExecutionPolicy Bypass -File "%~dp0install.ps1" %*
exit /b %ERRORLEVEL%
