"""Configuration from the environment, and the local identity of the embedded service.

Everything a user can set comes from `MODELVIGIL_*` variables (or CML's own `CDSW_*` ones when
running inside a workspace). What the embedded service invents for itself (its API key, access
key and CRNs) is written once to `<home>/service.json` with mode 0600, so that a client on the
same machine finds the service without being told.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import tempfile
import uuid
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelvigil.protocol import local_crn, private_dir

DEFAULT_PORT = 8765
DEFAULT_MODEL_NAME = "fraud-detector"


def _not_blank(key: SecretStr) -> SecretStr:
    # A key of spaces would switch auth on with a key anybody can send: a blank secret is no secret.
    if not key.get_secret_value().strip():
        raise ValueError("is set but blank: unset it to use the key in service.json, or set a real key")
    return key


ApiKey = Annotated[SecretStr, AfterValidator(_not_blank)]


class Settings(BaseSettings):
    """What a user configures. Unset values mean: use the embedded default."""

    model_config = SettingsConfigDict(env_prefix="MODELVIGIL_", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path.home() / ".modelvigil",
        description="Folder for the embedded store, the trained model and service.json.",
    )
    service_url: str | None = Field(
        default=None, description="Base URL of a modelvigil or CML-compatible service; unset = embedded."
    )
    store_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the metrics store; unset = SQLite file in home."
    )
    access_key: str | None = None
    api_key: ApiKey | None = None
    model_name: str = DEFAULT_MODEL_NAME
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)

    @property
    def names_model(self) -> bool:
        """True when a model name was given (setting, option), not left at its default: then it
        is the name to serve and to look for; otherwise the one this home serves is."""
        return "model_name" in self.model_fields_set

    def overridden(self, **values: object) -> Settings:
        """These settings with each given value in place of theirs; a None or empty value changes nothing."""
        updates = {name: value for name, value in values.items() if value}
        return self.model_copy(update=updates) if updates else self

    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.home / 'metrics.db'}"

    def model_path(self) -> Path:
        return self.home / "model.joblib"


class CMLEnvironment(BaseModel):
    """The variables CML sets inside a session, job or model replica."""

    domain: str
    api_key: SecretStr | None = None
    project_id: str | None = None
    api_url: str | None = None  # CDSW_API_URL: `https://<domain>/api/v1` in a real workspace

    @classmethod
    def from_env(cls) -> CMLEnvironment | None:
        domain = os.environ.get("CDSW_DOMAIN")
        if not domain:
            return None
        key = os.environ.get("CDSW_APIV2_KEY")
        return cls(
            domain=domain,
            api_key=SecretStr(key) if key else None,
            project_id=os.environ.get("CDSW_PROJECT_ID"),
            api_url=os.environ.get("CDSW_API_URL") or None,
        )

    @property
    def local_service_url(self) -> str | None:
        """A modelvigil service posing as a workspace (`modelvigil session` sets that up): named by
        a plain `http://` CDSW_API_URL or CDSW_DOMAIN, which a real workspace never is."""
        for named in (self.api_url, self.domain):
            if named and named.startswith("http://"):
                parts = urlsplit(named)
                return f"http://{parts.netloc}"
        return None


class ServiceIdentity(BaseModel):
    """Names the embedded service gives its one model, build and deployment (CML's shapes)."""

    api_key: ApiKey
    access_key: str
    project_id: str
    model_id: str
    build_id: str
    deployment_id: str
    workspace: str
    account: str
    model_name: str = DEFAULT_MODEL_NAME
    created_at: str

    def crn(self, resource_id: str) -> str:
        return local_crn(self.account, self.workspace, resource_id)

    @property
    def model_crn(self) -> str:
        return self.crn(self.model_id)

    @property
    def build_crn(self) -> str:
        return self.crn(self.build_id)

    @property
    def deployment_crn(self) -> str:
        return self.crn(self.deployment_id)

    @classmethod
    def generate(cls, model_name: str = DEFAULT_MODEL_NAME) -> ServiceIdentity:
        from datetime import UTC, datetime

        alphabet = string.ascii_lowercase + string.digits
        return cls(
            api_key=SecretStr(secrets.token_urlsafe(32)),
            # CML access keys: 32 lowercase alphanumerics, seen starting with "m".
            access_key="m" + "".join(secrets.choice(alphabet) for _ in range(31)),
            project_id=str(uuid.uuid4()),
            model_id=str(uuid.uuid4()),
            build_id=str(uuid.uuid4()),
            deployment_id=str(uuid.uuid4()),
            workspace=str(uuid.uuid4()),
            account=str(uuid.uuid4()),
            model_name=model_name,
            created_at=datetime.now(UTC).isoformat(),
        )


def identity_path(settings: Settings) -> Path:
    return settings.home / "service.json"


class InvalidIdentityFile(ValueError):
    """`service.json` exists but does not hold an identity (edited by hand, or not ours)."""


def _read_identity_file(path: Path) -> ServiceIdentity:
    try:
        return ServiceIdentity.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        # Field names and messages only: the file holds the API key, so no input values.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise InvalidIdentityFile(
            f"{path} is not a modelvigil service identity ({problems}); "
            "fix it, or delete it to have new keys created"
        ) from None


def read_identity(settings: Settings) -> ServiceIdentity | None:
    """The embedded service's identity on this machine, if one was ever created."""
    path = identity_path(settings)
    return _read_identity_file(path) if path.exists() else None


def load_or_create_identity(settings: Settings) -> ServiceIdentity:
    """Read `service.json`, or write a new one readable by its owner only. Settings given
    explicitly (API key, access key, model name) take the place of the remembered ones; `serve`
    then remembers a new model name (`remember_model_name`)."""
    path = identity_path(settings)
    if path.exists():
        identity = _read_identity_file(path)
    else:
        identity = ServiceIdentity.generate(settings.model_name)
        private_dir(path.parent)
        payload = identity.model_dump(mode="json")
        payload["api_key"] = identity.api_key.get_secret_value()
        # Written whole under a private name, then linked into place: link() refuses an existing
        # name, so two processes starting at once cannot overwrite each other's key, and neither
        # can read a file the other has only half written.
        tmp = _staged(path, payload)
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process created it first: theirs is the identity
            identity = _read_identity_file(path)
        finally:
            os.unlink(tmp)
    # Explicit settings win over the remembered ones.
    updates: dict[str, object] = {}
    if settings.names_model:
        updates["model_name"] = settings.model_name
    if settings.api_key is not None:
        updates["api_key"] = settings.api_key
    if settings.access_key:
        updates["access_key"] = settings.access_key
    return identity.model_copy(update=updates) if updates else identity


def remember_model_name(settings: Settings, identity: ServiceIdentity) -> str | None:
    """Write the served model's name into `service.json` if it differs from the file's, so that
    every client of this home finds the model under the name it is served by. Returns the old
    name when it changed."""
    path = identity_path(settings)
    stored = _read_identity_file(path)
    if stored.model_name == identity.model_name:
        return None
    payload = json.loads(path.read_text())
    payload["model_name"] = identity.model_name
    os.replace(_staged(path, payload), path)
    return stored.model_name


def _staged(path: Path, payload: dict[str, object]) -> str:
    """`payload` written whole to a private file (0600) beside `path`, to be linked or moved there:
    no reader ever sees half an identity."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".service-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2)
    return tmp
