<#
.SYNOPSIS
Install edge-extract from this offline bundle on Windows. Uses no network.

.DESCRIPTION
Checks the bundle's checksums, creates an isolated Python environment under -Prefix, installs
from the bundle's wheels only, extracts a synthetic report as a self-test, puts edge-extract on
the user's PATH and the drag-and-drop launcher on the desktop.

Only a bundle BUILT ON WINDOWS installs here. The llama-cpp-python wheel inside a bundle is
compiled for the operating system that built it, so a bundle made on Linux carries a Linux wheel
that cannot run on Windows. Build a Windows bundle on a connected Windows PC with Python and
Visual Studio Build Tools (C++ and CMake):  py packaging\build-bundle
This script has not been run by edge-extract's automated tests, which run on Linux only.

.EXAMPLE
install.bat
.EXAMPLE
powershell -ExecutionPolicy Bypass -File install.ps1 -Prefix D:\edge-extract
#>
param(
    [string]$Prefix = (Join-Path $env:LOCALAPPDATA "edge-extract"),
    [string]$Python = ""
)
$ErrorActionPreference = "Stop"
$Bundle = $PSScriptRoot

function Say([string]$Message) { Write-Host "install.ps1: $Message" }
function Die([string]$Message) { Write-Host "install.ps1: error: $Message" -ForegroundColor Red; exit 1 }

# pip must see the bundle and nothing else.
Get-ChildItem Env: | Where-Object Name -like "PIP_*" | ForEach-Object { Remove-Item "Env:$($_.Name)" }
$env:PIP_CONFIG_FILE = "NUL"; $env:PIP_NO_INPUT = "1"; $env:PIP_DISABLE_PIP_VERSION_CHECK = "1"; $env:HF_HUB_OFFLINE = "1"

$info = Get-Content (Join-Path $Bundle "bundle.json") -Raw | ConvertFrom-Json
if ($info.platform -ne "windows-amd64") {
    Die ("this bundle was built for $($info.platform), not Windows. Its llama-cpp-python wheel is compiled " +
        "for that system. Build a Windows bundle on a connected Windows PC: py packaging\build-bundle")
}

# 1. The bundle arrived whole.
$bad = @()
foreach ($line in Get-Content (Join-Path $Bundle "SHA256SUMS")) {
    $expected, $relative = $line -split "  ", 2
    $file = Join-Path $Bundle $relative
    if (-not (Test-Path -LiteralPath $file -PathType Leaf)) { $bad += "$relative (missing)"; continue }
    if ((Get-FileHash -LiteralPath $file -Algorithm SHA256).Hash.ToLower() -ne $expected) { $bad += "$relative (changed)" }
}
if ($bad) { Die ("the bundle is damaged or incomplete; copy it again: " + ($bad -join ", ")) }
Say "checksums ok"

# 2. A Python the bundle has packages for: -Python, else the py launcher's, else python.exe.
$candidates = @()
if ($Python) { $candidates += , @($Python) }
foreach ($version in $info.python_versions) { $candidates += , @("py", "-$version") }
$candidates += , @("python")
$PythonExe = $null
foreach ($candidate in $candidates) {
    $exe, $arguments = $candidate
    if (-not (Get-Command $exe -ErrorAction SilentlyContinue)) { continue }
    # Windows PowerShell turns a native command's stderr into a terminating error under "Stop".
    try { $found = & $exe @arguments -c "import sys; print('%d.%d' % sys.version_info[:2], sys.executable)" 2>$null }
    catch { continue }
    if ($LASTEXITCODE -ne 0 -or -not $found) { continue }
    $version, $path = $found -split " ", 2
    if ($info.python_versions -contains $version) { $PythonExe = $path; break }
    Say "skipping Python $version ($path): the bundle has packages for $($info.python_versions -join ', ')"
}
if (-not $PythonExe) {
    Die "no Python $($info.python_versions -join ' / ') found: install one from python.org (offline installer)"
}
Say "Python: $PythonExe"

# 3. An isolated environment in a fresh slot (env-a, env-b); bin\ switches to it after the self-test.
$timer = [Diagnostics.Stopwatch]::StartNew()
$bin = Join-Path $Prefix "bin"
New-Item -ItemType Directory -Force -Path $bin | Out-Null
$slotFile = Join-Path $Prefix "current-slot.txt"
$old = if (Test-Path $slotFile) { (Get-Content $slotFile -Raw).Trim() } else { "" }
$slot = if ($old -eq "env-a") { "env-b" } else { "env-a" }
$envDir = Join-Path $Prefix $slot
if (Test-Path $envDir) { Remove-Item -Recurse -Force $envDir }
& $PythonExe -m venv --without-pip $envDir
if ($LASTEXITCODE -ne 0) { Die "$PythonExe cannot create a virtual environment" }
$envPython = Join-Path $envDir "Scripts\python.exe"
$pipWheel = (Get-ChildItem (Join-Path $Bundle "wheels\pip-*.whl") | Select-Object -First 1).FullName
Say "installing edge-extract $($info.edge_extract) into $envDir"
& $envPython "$pipWheel\pip" install --quiet --no-index --only-binary :all: --no-cache-dir `
    --find-links (Join-Path $Bundle "wheels") --find-links (Join-Path $Bundle "llama\portable") `
    pip "edge-extract[$($info.extras)]==$($info.edge_extract)"
if ($LASTEXITCODE -ne 0) { Die "pip could not install from the bundle (see above)" }

# 4. Self-test: a synthetic report through the real model; the record must validate.
Say "self-test: extracting selftest-report.txt (first run unpacks the model, about 250 MB)"
$selftest = Join-Path $Prefix "selftest"
if (Test-Path $selftest) { Remove-Item -Recurse -Force $selftest }
& (Join-Path $envDir "Scripts\edge-extract.exe") extract (Join-Path $Bundle "selftest-report.txt") --out $selftest
if ($LASTEXITCODE -ne 0) { Die "self-test failed (see above)" }
$record = Get-ChildItem $selftest -Recurse -Filter "selftest-report*.json" | Select-Object -First 1
if (-not $record) { Die "self-test failed: no record written in $selftest" }
& $envPython (Join-Path $Bundle "selftest_check.py") $record.FullName
if ($LASTEXITCODE -ne 0) { Die "self-test failed: the record did not validate" }
Say "self-test ok"
foreach ($model in @($info.models | Where-Object { $_ })) {
    Say "installing the optional model $model from the bundle"
    & (Join-Path $envDir "Scripts\edge-extract.exe") models install $model --find-links (Join-Path $Bundle "models")
    if ($LASTEXITCODE -ne 0) { Die "could not install $model (see above)" }
}

# 5. Switch over, then PATH and the launcher. pip's edge-extract.exe names its environment's
# python.exe by absolute path, so a copy in bin\ runs that environment; an .exe rather than a
# .cmd shim, because a .bat (the drop launcher) calling a .cmd without `call` never returns.
$command = Join-Path $bin "edge-extract.exe"
Copy-Item (Join-Path $envDir "Scripts\edge-extract.exe") $command -Force
Set-Content -Path $slotFile -Encoding ascii -Value $slot
if ($old -and $old -ne $slot -and (Test-Path (Join-Path $Prefix $old))) { Remove-Item -Recurse -Force (Join-Path $Prefix $old) }
$userPath = [Environment]::GetEnvironmentVariable("Path", "User")
if (($userPath -split ";") -notcontains $bin) {
    [Environment]::SetEnvironmentVariable("Path", (@($userPath, $bin) | Where-Object { $_ }) -join ";", "User")
    Say "added $bin to your PATH (new windows see it)"
}
$env:Path = "$bin;$env:Path"
foreach ($launcher in Get-ChildItem (Join-Path $Bundle "launchers\*.bat") -ErrorAction SilentlyContinue) {
    $desktop = [Environment]::GetFolderPath("Desktop")
    Copy-Item $launcher.FullName -Destination $desktop
    Say "launcher: $(Join-Path $desktop $launcher.Name) (drop a folder of reports on it)"
}
Say "installed edge-extract $($info.edge_extract) in $([int]$timer.Elapsed.TotalSeconds) s: $command"
& $command doctor --out $HOME
if ($LASTEXITCODE -ne 0) { Say "doctor found problems (above); the install itself succeeded" }
