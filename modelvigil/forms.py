"""Flow parameters that read as a form: fields grouped and in the order of thought, bounds stated.

Prefect renders a flow's pydantic parameters as its custom-run form. Three things get in the way
there, and this base class takes them out of the schema (the model itself validates as before):

- Order: a Postgres-backed server stores the schema as JSONB, which gives object keys back sorted,
  so a nested model's fields come out alphabetically. Both UIs sort by a `position` key when there
  is one: every field gets its place (and its group in its title).
- `X | None`: an `anyOf` with null renders as a type toggle ("Property is type None"). The schema
  says `X` only; a blank or missing value means "not given" (None), as the description says.
  Defaults of None are left out of the serialized model for the same reason: a form prefilled
  with null would send null back, which the schema no longer allows.
- Bounds: the inputs do not show `minimum`/`maximum`, so the description says them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer, model_validator


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def bounds_text(prop: dict[str, Any]) -> str:
    """`1 to 10,000,000`, `above 0`, `at most 1`, or "" when unbounded."""
    low = next(
        (f"{'above ' if k == 'exclusiveMinimum' else ''}{_number(prop[k])}"
         for k in ("minimum", "exclusiveMinimum") if k in prop),
        None,
    )  # fmt: skip
    high = next(
        (f"{'below ' if k == 'exclusiveMaximum' else ''}{_number(prop[k])}"
         for k in ("maximum", "exclusiveMaximum") if k in prop),
        None,
    )  # fmt: skip
    if low and high:
        if low.startswith("above") or high.startswith("below"):
            low = low if low.startswith("above") else f"at least {low}"
            return f"{low}, {high if high.startswith('below') else f'at most {high}'}"
        return f"{low} to {high}"
    if low:
        return low if low.startswith("above") else f"at least {low}"
    if high:
        return high if high.startswith("below") else f"at most {high}"
    return ""


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, null]` as `X`, keeping the field's own title, description and the like."""
    options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
    if len(options) != 1 or len(options) == len(prop.get("anyOf", [])):
        return prop
    merged = {k: v for k, v in prop.items() if k != "anyOf"}
    merged.update(options[0])
    if "pattern" in merged:  # blank means "not given": the form may send "" for a cleared field
        merged["pattern"] = f"^$|{merged['pattern']}"
    return merged


def _form_schema(schema: dict[str, Any], model: type[FormModel]) -> None:
    properties: dict[str, Any] = schema.get("properties", {})
    position = 0
    for group, names in model.form_groups.items():
        for name in names:
            prop = _without_null(properties[name])
            if prop.get("default", 0) is None:
                del prop["default"]
            prop["title"] = f"{group}: {prop.get('title', name.replace('_', ' ').title())}"
            bounds = bounds_text(prop)
            if bounds:
                prop["description"] = f"{prop.get('description', '').rstrip('.')}. Range: {bounds}."
            prop["position"] = position
            properties[name] = prop
            position += 1


class FormModel(BaseModel):
    """A flow's parameters, grouped: `form_groups` maps a group's title to its fields, in order,
    and must name every field exactly once (checked when the class is made)."""

    model_config = ConfigDict(json_schema_extra=_form_schema)  # type: ignore[typeddict-item]
    form_groups: ClassVar[dict[str, tuple[str, ...]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        grouped = [name for names in cls.form_groups.values() for name in names]
        if sorted(grouped) != sorted(cls.model_fields):
            missing = sorted(set(cls.model_fields) - set(grouped))
            extra = sorted(set(grouped) - set(cls.model_fields))
            raise TypeError(f"{cls.__name__}.form_groups: missing {missing}, unknown {extra}")

    @model_validator(mode="before")
    @classmethod
    def _blank_is_not_given(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {
                k: v
                for k, v in data.items()
                if not ((v is None or (isinstance(v, str) and not v.strip())) and _optional(cls, k))
            }
        return data

    @model_serializer(mode="wrap", when_used="json")
    def _omit_unset_nones(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


def _optional(model: type[BaseModel], name: str) -> bool:
    field = model.model_fields.get(name)
    return field is not None and field.default is None
