"""The reboot_pending module as a test double: the
reasons marked so far, and a mark that fails on demand."""


class Marks:
    def __init__(self, fail=None):
        self.reasons = []
        self.fail = fail

    def salt(self):
        return {"reboot_pending.reasons": lambda: list(self.reasons), "reboot_pending.mark": self.set}

    def set(self, reason):
        if self.fail:
            raise OSError(self.fail)
        self.reasons.append(reason)
        return True
