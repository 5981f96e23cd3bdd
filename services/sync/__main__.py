from services.runtime.service_cli import make_service_cli
from services.sync.app import SPEC

app = make_service_cli(SPEC)

if __name__ == "__main__":
    app()
