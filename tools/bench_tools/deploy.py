"""Deploy: build, copy only what changed, verify by hash, roll back on failure.

    python -m bench_tools deploy --port /dev/ttyUSB0            # ESP32 (xtensawin)
    python -m bench_tools deploy --port socket://... --arch x64 # simulated board

Steps:
1. build firmware/ + shared/ with mpy-cross (build.py); a compile error stops
   here, before the device is touched;
2. hash the device's copies on the device (hashlib.sha256) and compare with
   the local build: only files that differ are copied, so a second run copies
   nothing;
3. move the device's old versions of those files into ``.deploy_bak/`` with a
   plan listing every file the deploy will write (a rename: no flash space
   needed), also any stale ``x.py`` that would shadow a new ``x.mpy``
   (MicroPython imports .py before .mpy);
4. copy with ``mpremote fs cp`` (one session, progress per file);
5. hash again on the device; every deployed file must match;
6. success: delete the backups.  Any failure in 4 or 5: remove what was
   written, rename the backups back, and check the restored hashes.
A deploy interrupted by a crash or a pulled cable leaves ``.deploy_bak/``
behind; the next deploy rolls it back first, so the board never keeps a mix.
"""

import json
import subprocess

from bench_tools import build, mpr
from bench_tools.progress import Progress

BACKUP_DIR = ".deploy_bak"
PLAN = BACKUP_DIR + "/plan.json"

# Runs on the device: sha256 of each named file (None when absent), plus
# whether a backup directory is left over.  Needs nothing deployed.
_HASH = """
import os, json, hashlib, binascii
def _h(n):
    try:
        f = open(n, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    while True:
        k = f.readinto(b)
        if not k:
            break
        h.update(m[:k])
    f.close()
    return binascii.hexlify(h.digest()).decode()
_d = {}
for _n in %s:
    _d[_n] = _h(_n)
try:
    os.stat('%s')
    _b = True
except OSError:
    _b = False
print('BENCH ' + json.dumps({'hashes': _d, 'backup': _b, 'files': os.listdir()}))
"""

_BACKUP = """
import os, json
try:
    os.mkdir('%(dir)s')
except OSError:
    pass
_f = open('%(plan)s', 'w')
_f.write(json.dumps(%(plan_doc)s))
_f.close()
_moved = []
for _n in %(move)s:
    try:
        os.rename(_n, '%(dir)s/' + _n)
        _moved.append(_n)
    except OSError:
        pass
print('BENCH ' + json.dumps({'moved': _moved}))
"""

# Rollback reads the plan from the device, so it also undoes a deploy that
# was interrupted before this tool could clean up.
_ROLLBACK = """
import os, json
try:
    _f = open('%(plan)s')
    _p = json.loads(_f.read())
    _f.close()
except OSError:
    _p = {'write': []}
_removed = []
for _n in _p['write']:
    try:
        os.remove(_n)
        _removed.append(_n)
    except OSError:
        pass
_restored = []
for _n in os.listdir('%(dir)s'):
    if _n != 'plan.json':
        os.rename('%(dir)s/' + _n, _n)
        _restored.append(_n)
os.remove('%(plan)s')
os.rmdir('%(dir)s')
print('BENCH ' + json.dumps({'removed': _removed, 'restored': _restored}))
"""

_COMMIT = """
import os, json
_n = 0
for _f in os.listdir('%(dir)s'):
    os.remove('%(dir)s/' + _f)
    _n += 1
os.rmdir('%(dir)s')
print('BENCH ' + json.dumps({'deleted': _n}))
"""


class DeployError(RuntimeError):
    pass


def device_hashes(port, names):
    return mpr.exec_json(port, _HASH % (json.dumps(sorted(names)), BACKUP_DIR))


def rollback(port):
    return mpr.exec_json(port, _ROLLBACK % {"dir": BACKUP_DIR, "plan": PLAN})


def _shadows(name):
    """Device files that would shadow or duplicate ``name``."""
    stem, ext = name.rsplit(".", 1)
    return [stem + ".py"] if ext == "mpy" else [stem + ".mpy"] if name != "main.py" else []


def _copy(port, files, progress, timeout):
    """One mpremote session copying {device name: local path}; progress per file."""
    args = []
    for name, path in files.items():
        if args:
            args.append("+")
        args += ["fs", "cp", str(path), ":" + name]
    proc = subprocess.Popen(mpr.command(port, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line.rstrip())
            if line.startswith("cp "):
                progress.step(line.split(":")[-1].strip())
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise DeployError("copy failed: " + " | ".join(out[-4:]))


def deploy(port, arch="xtensawin", timeout=300.0, log=print):
    """Deploy to ``port``; returns a summary dict (copied, removed, verified,
    rolled_back).  Raises DeployError after rolling back."""
    files = build.build_firmware(arch)
    local = {name: build.sha256_file(path) for name, path in files.items()}
    shadow = {s for name in local for s in _shadows(name)} - set(local)
    state = device_hashes(port, set(local) | shadow)
    summary = {"arch": arch, "files": len(local), "copied": [], "removed": [], "recovered": None}
    if state["backup"]:
        summary["recovered"] = rollback(port)
        log("an interrupted deploy was rolled back first: %s" % summary["recovered"])
        state = device_hashes(port, set(local) | shadow)
    before = state["hashes"]
    # Modules on the board that this build does not have (renamed or deleted
    # sources): reported, not deleted -- the board may hold modules of its own.
    summary["extra"] = sorted(f for f in state["files"] if f.endswith(".mpy") and f not in local)
    if summary["extra"]:
        log("deploy: modules on the board that this build does not have: %s" % ", ".join(summary["extra"]))
    changed = [n for n in sorted(local) if before.get(n) != local[n]]
    stale = [n for n in sorted(shadow) if before.get(n) is not None]
    if not changed and not stale:
        log("deploy: %d files already up to date, nothing copied" % len(local))
        summary["verified"] = True
        return summary
    plan = {"write": changed}
    mpr.exec_json(
        port,
        _BACKUP % {"dir": BACKUP_DIR, "plan": PLAN, "plan_doc": json.dumps(plan), "move": json.dumps(changed + stale)},
    )
    progress = Progress("deploy", len(changed))
    try:
        _copy(port, {n: files[n] for n in changed}, progress, timeout)
        after = device_hashes(port, set(local))["hashes"]
        bad = [n for n in sorted(local) if after.get(n) != local[n]]
        if bad:
            raise DeployError("verification failed: device hash differs for %s" % ", ".join(bad))
    except (DeployError, mpr.DeviceError) as exc:
        progress.finish("FAILED")
        done = rollback(port)
        restored = device_hashes(port, set(local) | shadow)["hashes"]
        intact = all(restored.get(n) == h for n, h in before.items())
        raise DeployError(
            "%s; rolled back (restored %d previous files, removed %d new copies%s)"
            % (exc, len(done["restored"]), len(done["removed"]), "" if intact else "; RESTORED HASHES DIFFER")
        ) from None
    mpr.exec_json(port, _COMMIT % {"dir": BACKUP_DIR})
    progress.finish("%d copied, verified" % len(changed))
    summary.update(copied=changed, removed=stale, verified=True)
    return summary


def manifest(arch="xtensawin"):
    """{device name: sha256} of the local build (for records and tests)."""
    return {name: build.sha256_file(p) for name, p in build.build_firmware(arch).items()}
