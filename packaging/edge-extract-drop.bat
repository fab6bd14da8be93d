@echo off
rem Drop a folder (or files) of clinical reports onto this file: the records appear beside them,
rem in <folder>-extracted. Running it again resumes a batch that was stopped or cut off.
rem Put it on the desktop (or a shortcut to it); edge-extract must be on PATH (the installer does that).
setlocal
chcp 65001 >nul
if "%~1"=="" (
    echo Drop a folder of reports onto this icon.
    pause
    exit /b 2
)
edge-extract extract --next-to-input %*
set "status=%ERRORLEVEL%"
echo.
if "%status%"=="0" (echo Finished.) else (echo Finished with problems: see errors.jsonl in the output folder.)
pause
exit /b %status%
