from services.runtime.migrations import run_env
from services.sync.adapters.orm import SyncBase

run_env(SyncBase.metadata)
