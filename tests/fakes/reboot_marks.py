"""The k8snvidia module's reboot-pending functions as a test double: the
reasons marked so far, and a mark that fails on demand."""


class Marks:
    def __init__(self, fail=None):
        self.reasons = []
        self.fail = fail

    def salt(self):
        return {"k8snvidia.reboot_pending": lambda: list(self.reasons), "k8snvidia.set_reboot_pending": self.set}

    def set(self, reason):
        if self.fail:
            raise OSError(self.fail)
        self.reasons.append(reason)
        return True
