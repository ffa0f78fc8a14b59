"""Constants shared by the client tests (a module, not conftest, so tests can import it)."""

KEY_ID = "LTAI5tClientTestId"
SECRET = "client-secret-do-not-leak-7f3a"  # a fake, test-only secret
TOKEN = "STS.client-token-do-not-leak-91c2"  # a fake, test-only token
PROJECT = "proj"
LOGSTORE = "store"
# A temporary (STS) key: the emulator requires TOKEN with it, like a real STS key.
TMP_KEY_ID = "STS.ClientTmpKeyId"
TMP_SECRET = "client-tmp-secret-do-not-leak-55e1"  # a fake, test-only secret
REGION = "cn-hangzhou"
