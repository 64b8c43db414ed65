"""Emulated apt-mark: hold, unhold, showhold, manual, auto, showmanual."""

from .. import fs, pkgdb, state


def main(argv):
    args = [a for a in argv[1:] if a not in ("-q", "-qq")]
    if not args:
        fs.err("E: No operation given")
        return 100
    cmd, names = args[0], args[1:]
    inst = pkgdb.installed()
    if cmd in ("hold", "unhold"):
        with state.locked() as st:
            holds = st.setdefault("holds", [])
            for n in names:
                if n not in inst:
                    fs.err(f"E: Unable to locate package {n}")
                    return 100
                if cmd == "hold":
                    if n in holds:
                        fs.out(f"{n} was already set on hold.")
                    else:
                        holds.append(n)
                        fs.out(f"{n} set on hold.")
                else:
                    if n in holds:
                        holds.remove(n)
                        fs.out(f"Canceled hold on {n}.")
                    else:
                        fs.out(f"{n} was already not on hold.")
        return 0
    if cmd == "showhold":
        for n in sorted(state.read().get("holds") or []):
            fs.out(n)
        return 0
    if cmd in ("showmanual", "showauto"):
        want = "manual" if cmd == "showmanual" else "auto"
        for n, e in sorted(inst.items()):
            if (e.get("reason") or "manual") in ((want,) if want == "auto" else ("manual", "base")):
                fs.out(n)
        return 0
    if cmd in ("manual", "auto"):
        with state.locked() as st:
            for n in names:
                if n in st.get("packages", {}):
                    st["packages"][n]["reason"] = cmd
                    fs.out(f"{n} set to {'manually' if cmd == 'manual' else 'automatically'} installed.")
        return 0
    fs.err(f"E: Invalid operation {cmd}")
    return 100
