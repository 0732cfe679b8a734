"""Running Terraform offline: the provider mirror on disk, and environments/local on the emulator.

    python -m bookrec_local.terraform apply-local --endpoint http://127.0.0.1:4566 [--tables-only]
    python -m bookrec_local.terraform destroy-local --endpoint ...

The provider mirror is found at TF_PLUGIN_MIRROR, else the usual places
(/opt/tf-plugins, ~/.terraform.d/plugins); Terraform never reaches a registry.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bookrec_local.definitions import ROOT

INFRASTRUCTURE = ROOT / "infrastructure"
LOCAL_ENV = INFRASTRUCTURE / "environments" / "local"
MIRROR_CANDIDATES = ("/opt/tf-plugins", "~/.terraform.d/plugins", "/usr/share/terraform/plugins")


def terraform_binary() -> str | None:
    return os.environ.get("TERRAFORM_BIN") or shutil.which("terraform")


def provider_mirror() -> Path | None:
    for candidate in (os.environ.get("TF_PLUGIN_MIRROR"), *MIRROR_CANDIDATES):
        if candidate and (Path(candidate).expanduser() / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return Path(candidate).expanduser()
    return None


def terraform_available() -> bool:
    return terraform_binary() is not None and provider_mirror() is not None


def why_unavailable() -> str:
    if terraform_binary() is None:
        return "no terraform binary on PATH (or TERRAFORM_BIN)"
    return f"no AWS provider mirror found (set TF_PLUGIN_MIRROR; looked in {', '.join(MIRROR_CANDIDATES)})"


def cli_config(work: Path) -> Path:
    """A CLI config pointing at the mirror found here (the repository's terraformrc.hcl is the template)."""
    mirror = provider_mirror()
    if mirror is None:
        raise RuntimeError(why_unavailable())
    text = (INFRASTRUCTURE / "terraformrc.hcl").read_text().replace('"/opt/tf-plugins"', json.dumps(str(mirror)))
    path = work / "terraformrc.hcl"
    path.write_text(text)
    return path


class Terraform:
    """One working directory's Terraform, with its own data dir and state under `work`."""

    def __init__(self, directory: Path, work: Path) -> None:
        self.directory = directory
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(cli_config(work)),
            "TF_DATA_DIR": str(work / ".terraform"),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }

    def run(self, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
        command = [terraform_binary() or "terraform", f"-chdir={self.directory}", *args]
        return subprocess.run(command, env=self.env, check=True, text=True,
                              capture_output=capture, stdout=None if capture else subprocess.DEVNULL)

    def init(self, backend: bool = True) -> None:
        self.run("init", "-no-color", f"-backend={'true' if backend else 'false'}")

    def apply(self, variables: dict[str, str], destroy: bool = False) -> None:
        args = [f"-var={k}={v}" for k, v in variables.items()]
        self.run("apply" if not destroy else "destroy", "-auto-approve", "-no-color", "-parallelism=20",
                 f"-state={self.work / 'terraform.tfstate'}", *args)

    def outputs(self) -> dict:
        result = self.run("output", "-json", f"-state={self.work / 'terraform.tfstate'}", capture=True)
        return {k: v["value"] for k, v in json.loads(result.stdout).items()}


def apply_local(endpoint: str, prefix: str, state_dir: Path, tables_only: bool = True) -> dict:
    terraform = Terraform(LOCAL_ENV, state_dir)
    terraform.init()
    terraform.apply({"endpoint": endpoint, "name_prefix": prefix, "full_stack": str(not tables_only).lower()})
    return terraform.outputs()


def destroy_local(endpoint: str, prefix: str, state_dir: Path, tables_only: bool = True) -> None:
    terraform = Terraform(LOCAL_ENV, state_dir)
    if not tables_only:
        # Emulator gap: ElastiCache resources never finish deleting there (the cluster stays
        # "deleting", the subnet group cannot be deleted). The emulator is disposable, so the cache is
        # forgotten instead of destroyed; on AWS `terraform destroy` removes it normally.
        listed = terraform.run("state", "list", f"-state={state_dir / 'terraform.tfstate'}", capture=True)
        cache = [line for line in listed.stdout.split() if ".module.cache[" in line and "aws_elasticache" in line]
        if cache:
            terraform.run("state", "rm", f"-state={state_dir / 'terraform.tfstate'}", *cache, capture=True)
    terraform.apply({"endpoint": endpoint, "name_prefix": prefix, "full_stack": str(not tables_only).lower()},
                    destroy=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["apply-local", "destroy-local", "check"])
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"))
    parser.add_argument("--prefix", default="bookrec-local")
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".run" / "terraform")
    parser.add_argument("--tables-only", action="store_true")
    args = parser.parse_args()
    if args.command == "check":
        print("terraform ready" if terraform_available() else f"terraform unavailable: {why_unavailable()}")
        sys.exit(0 if terraform_available() else 1)
    if args.command == "apply-local":
        print(json.dumps(apply_local(args.endpoint, args.prefix, args.state_dir, args.tables_only), indent=2))
    else:
        destroy_local(args.endpoint, args.prefix, args.state_dir, args.tables_only)


if __name__ == "__main__":
    main()
