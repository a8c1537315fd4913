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
import zlib
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, SecretStr, TypeAdapter, ValidationError
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


def _model_name(name: str) -> str:
    # The name travels in URLs, file names of reports and search filters: printable, one line.
    if not name.strip():
        raise ValueError("a model name cannot be blank")
    if any(not c.isprintable() for c in name):
        raise ValueError(f"model name {name!r} holds a control character")
    return name


ModelName = Annotated[str, Field(max_length=200), AfterValidator(_model_name)]


def model_names(names: list[str]) -> list[str]:
    """`names` as models to serve, or ValueError saying which one cannot be a model's name."""
    for name in names:
        try:
            TypeAdapter(ModelName).validate_python(name)
        except ValidationError as exc:
            raise ValueError(f"{name[:60]!r}: {exc.errors()[0]['msg']}") from None
    return list(dict.fromkeys(names))


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
    models: list[ModelName] = Field(
        default=[], description="Models the embedded service serves, each its own CML model; none: one."
    )
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


class ModelKeys(BaseModel):
    """A further model of the embedded service's project: its own keys, ids and training seed."""

    access_key: str
    model_id: str
    build_id: str
    deployment_id: str
    seed: int

    @classmethod
    def generate(cls, name: str) -> ModelKeys:
        # From the name, so a model of the same name behaves the same in every home.
        seed = zlib.crc32(name.encode()) & 0x7FFFFFFF
        return cls(
            access_key=_access_key(),
            model_id=str(uuid.uuid4()),
            build_id=str(uuid.uuid4()),
            deployment_id=str(uuid.uuid4()),
            seed=seed,
        )


def _access_key() -> str:
    # CML access keys: 32 lowercase alphanumerics, seen starting with "m".
    alphabet = string.ascii_lowercase + string.digits
    return "m" + "".join(secrets.choice(alphabet) for _ in range(31))


class ServiceIdentity(BaseModel):
    """Names the embedded service gives its model, build and deployment (CML's shapes); further
    models of the same project (`serve --model NAME`) in `other_models`, by name."""

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
    other_models: dict[str, ModelKeys] = {}
    seed: int | None = None  # the training seed; None: the model's default reference sample

    def as_model(self, name: str) -> ServiceIdentity:
        """This identity as seen by model `name`: the same project and API key, that model's own
        keys (this one's when `name` is its own name). KeyError when the home has no such model."""
        if name == self.model_name:
            return self
        keys = self.other_models[name]
        return self.model_copy(update={**keys.model_dump(), "model_name": name, "other_models": {}})

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

        return cls(
            api_key=SecretStr(secrets.token_urlsafe(32)),
            access_key=_access_key(),
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


def served_identities(
    settings: Settings, identity: ServiceIdentity, names: list[str]
) -> list[ServiceIdentity]:
    """One identity per model to serve, in the order named (just `identity` when none is named).
    A name this home has not served before gets new keys, remembered in `service.json`."""
    if not names:
        return [identity]
    new = [n for n in dict.fromkeys(names) if n != identity.model_name and n not in identity.other_models]
    if new:
        path = identity_path(settings)
        payload = json.loads(path.read_text())
        known = payload.setdefault("other_models", {})
        for name in new:
            known.setdefault(name, ModelKeys.generate(name).model_dump())
        os.replace(_staged(path, payload), path)
        stored = _read_identity_file(path).other_models
        identity = identity.model_copy(update={"other_models": {**identity.other_models, **stored}})
    return [identity.as_model(name) for name in dict.fromkeys(names)]


def _staged(path: Path, payload: dict[str, object]) -> str:
    """`payload` written whole to a private file (0600) beside `path`, to be linked or moved there:
    no reader ever sees half an identity."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".service-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2)
    return tmp
