from services.rules.app import SPEC
from services.runtime.service_cli import make_service_cli

app = make_service_cli(SPEC)

if __name__ == "__main__":
    app()
