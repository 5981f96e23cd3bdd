from services.runtime.migrations import run_env
from services.users.adapters.orm import UsersBase

run_env(UsersBase.metadata)
