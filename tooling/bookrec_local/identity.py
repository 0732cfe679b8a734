"""The local identity provider: the emulator's Cognito user pool.

The stack creates a user pool, an app client and an `admin` group in the
moto server; the services verify tokens against the pool's JWKS exactly as
they would against Cognito on AWS. `make token USER=alice` prints an access
token for alice (created on first use; ADMIN=1 adds her to `admin`).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import boto3

from bookrec_local import definitions
from bookrec_local.procs import LOCAL_AWS_ENV

DEV_PASSWORD = "Local-dev-0nly!"  # the emulator's users only; never a real account
ADMIN_GROUP = "admin"


def cognito(endpoint: str) -> Any:
    return boto3.client("cognito-idp", endpoint_url=endpoint, region_name=LOCAL_AWS_ENV["AWS_REGION"],
                        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"])


def create_identity(endpoint: str, name: str) -> dict[str, str]:
    """A user pool + app client + admin group; returns the settings the services need."""
    client = cognito(endpoint)
    pool_id = client.create_user_pool(PoolName=name)["UserPool"]["Id"]
    client_id = client.create_user_pool_client(
        UserPoolId=pool_id, ClientName=f"{name}-api",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    client.create_group(GroupName=ADMIN_GROUP, UserPoolId=pool_id)
    return {
        "COGNITO_USER_POOL_ID": pool_id,
        "JWT_JWKS_URL": f"{endpoint}/{pool_id}/.well-known/jwks.json",
        # The emulator signs tokens with the issuer Cognito would use on AWS.
        "JWT_ISSUER": f"https://cognito-idp.{LOCAL_AWS_ENV['AWS_REGION']}.amazonaws.com/{pool_id}",
        "JWT_AUDIENCE": client_id,
        "INTERNAL_TOKEN": secrets.token_urlsafe(24),
    }


def issue_token(endpoint: str, pool_id: str, client_id: str, username: str, admin: bool = False) -> dict[str, str]:
    """Create the user if needed and sign in; returns the access token (what the API takes), the ID token
    (which it refuses) and the user's `sub`."""
    client = cognito(endpoint)
    try:
        client.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
        client.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=DEV_PASSWORD,
                                       Permanent=True)
    except client.exceptions.UsernameExistsException:
        pass
    if admin:
        client.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=ADMIN_GROUP)
    result = client.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                  AuthParameters={"USERNAME": username, "PASSWORD": DEV_PASSWORD})
    tokens = result["AuthenticationResult"]
    user = client.admin_get_user(UserPoolId=pool_id, Username=username)
    sub = next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")
    return {"access_token": tokens["AccessToken"], "id_token": tokens["IdToken"], "sub": sub,
            "username": username}


def bearer(signed_in: dict[str, str]) -> dict[str, str]:
    """The Authorization header of an identity issue_token signed in."""
    return {"Authorization": f"Bearer {signed_in['access_token']}"}


def main() -> None:
    parser = argparse.ArgumentParser(description="Print an access token for a local user (the stack must be up).")
    parser.add_argument("user")
    parser.add_argument("--admin", action="store_true", help="make the user a member of the admin group")
    parser.add_argument("--state-dir", type=Path,
                        default=Path(os.environ.get("BOOKREC_STATE_DIR", definitions.ROOT / ".run")),
                        help="the stack's state directory (default $BOOKREC_STATE_DIR, else .run/)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print token, sub and username as JSON")
    shown.add_argument("--sub", action="store_true", help="print the user's id (the token's sub) only")
    args = parser.parse_args()
    env_file = args.state_dir / "env.json"
    if not env_file.exists():
        sys.exit(f"no local stack in {args.state_dir} (make up)")
    env = json.loads(env_file.read_text())
    issued = issue_token(env["AWS_ENDPOINT_URL"], env["COGNITO_USER_POOL_ID"], env["JWT_AUDIENCE"], args.user,
                         args.admin)
    if args.json:
        print(json.dumps(issued))
    elif args.sub:
        print(issued["sub"])
    else:
        print(f"# user {args.user}: sub (use it as user_id) = {issued['sub']}", file=sys.stderr)
        print(issued["access_token"])


if __name__ == "__main__":
    main()
