"""General Settings (admins), user preferences and the System Parameters page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from knowlix import param_rules, params
from knowlix.decorators import (
    AuthenticatedHttpRequest,
    admin_required,
    technical_required,
)
from knowlix.models import SystemParameter, UserProfile
from knowlix.redirects import safe_next_url
from knowlix.users import get_profile, is_admin


class GeneralSettingsForm(forms.Form):
    catchall_domain = forms.CharField(
        label="Alias domain (catch-all)",
        max_length=253,
        help_text="Replies and aliases are received at this domain, e.g. company.com.",
    )
    default_from = forms.CharField(
        label="Default From",
        max_length=320,
        help_text=(
            "Mail with no matching server leaves as this address: a local part "
            "(notifications, at the alias domain) or a full address."
        ),
    )
    bounce_alias = forms.CharField(label="Bounce alias (local part)", max_length=64)
    use_custom_servers = forms.BooleanField(
        label="Use custom email servers",
        required=False,
        help_text="Send through your own SMTP, Outlook or Gmail servers.",
    )

    def _clean_rule(self, name: str, key: str) -> str:
        try:
            return param_rules.clean_param(key, self.cleaned_data[name])
        except param_rules.InvalidParameter as exc:
            raise forms.ValidationError(exc.user_message) from None

    def clean_catchall_domain(self) -> str:
        return self._clean_rule("catchall_domain", params.CATCHALL_DOMAIN)

    def clean_default_from(self) -> str:
        return self._clean_rule("default_from", params.DEFAULT_FROM)

    def clean_bounce_alias(self) -> str:
        return self._clean_rule("bounce_alias", params.BOUNCE_ALIAS)


@admin_required
def general_settings(request: HttpRequest) -> HttpResponse:
    form = GeneralSettingsForm(
        request.POST or None,
        initial={
            "catchall_domain": params.catchall_domain(),
            "default_from": params.get_param(params.DEFAULT_FROM),
            "bounce_alias": params.get_param(params.BOUNCE_ALIAS),
            "use_custom_servers": params.get_bool_param(params.USE_CUSTOM_SERVERS),
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        params.set_param(params.CATCHALL_DOMAIN, data["catchall_domain"])
        params.set_param(params.DEFAULT_FROM, data["default_from"])
        params.set_param(params.BOUNCE_ALIAS, data["bounce_alias"])
        params.set_param(
            params.USE_CUSTOM_SERVERS, "true" if data["use_custom_servers"] else "false"
        )
        messages.success(request, "Settings saved.")
        return redirect("knowlix:settings")
    return render(
        request,
        "knowlix/settings.html",
        {"form": form, "default_from": params.default_from_address()},
        status=400 if form.is_bound else 200,
    )


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = UserProfile
        fields = ["notify_by", "developer_mode"]
        widgets = {"notify_by": forms.RadioSelect}
        labels = {"notify_by": "Receive notifications"}


@login_required
def preferences(request: AuthenticatedHttpRequest) -> HttpResponse:
    profile = get_profile(request.user)
    form = PreferencesForm(request.POST or None, instance=profile)
    if not is_admin(request.user):
        del form.fields["developer_mode"]
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Preferences saved.")
        return redirect("knowlix:preferences")
    return render(
        request,
        "knowlix/preferences.html",
        {"form": form},
        status=400 if form.is_bound else 200,
    )


@admin_required
@require_POST
def toggle_developer_mode(request: AuthenticatedHttpRequest) -> HttpResponse:
    profile = get_profile(request.user)
    profile.developer_mode = not profile.developer_mode
    profile.save(update_fields=["developer_mode"])
    state = "on" if profile.developer_mode else "off"
    messages.info(request, f"Developer mode is {state}.")
    return redirect(
        safe_next_url(request, request.POST.get("next"), "knowlix:settings")
    )


class ParameterForm(forms.ModelForm):
    class Meta:
        model = SystemParameter
        fields = ["key", "value"]

    def clean_key(self) -> str:
        key = self.cleaned_data["key"].strip()
        if not key or any(c.isspace() for c in key):
            raise forms.ValidationError("A key is one word, e.g. mail.catchall.domain.")
        return key

    def clean(self) -> dict[str, Any]:
        """Known keys follow the same rules as General Settings."""
        super().clean()
        data = self.cleaned_data
        key = data.get("key")
        if key and "value" in data:
            try:
                data["value"] = param_rules.clean_param(key, data["value"] or "")
            except param_rules.InvalidParameter as exc:
                self.add_error("value", exc.user_message)
        return data


@technical_required
def parameter_list(request: HttpRequest) -> HttpResponse:
    form = ParameterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        params.set_param(form.cleaned_data["key"], form.cleaned_data["value"])
        messages.success(request, "Parameter saved.")
        return redirect("knowlix:parameters")
    rows = SystemParameter.objects.order_by("key")
    return render(
        request,
        "knowlix/parameters.html",
        {"form": form, "rows": rows, "defaults": sorted(params.DEFAULTS.items())},
        status=400 if form.is_bound else 200,
    )


@technical_required
def parameter_edit(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(SystemParameter, pk=pk)
    form = ParameterForm(request.POST or None, instance=row)
    if request.method == "POST":
        if "delete" in request.POST:
            row.delete()
            params.clear_cache()
            messages.success(request, f"Parameter {row.key} deleted.")
            return redirect("knowlix:parameters")
        if form.is_valid():
            form.save()
            params.clear_cache()
            messages.success(request, "Parameter saved.")
            return redirect("knowlix:parameters")
    return render(
        request,
        "knowlix/parameter_form.html",
        {"form": form, "row": row},
        status=400 if form.is_bound else 200,
    )
