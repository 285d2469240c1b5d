"""General Settings (admins), user preferences and the System Parameters page."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from knowlix import params
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
        label="Default From (local part)",
        max_length=64,
        help_text="Mail with no matching server leaves as this address at the alias domain.",
    )
    bounce_alias = forms.CharField(label="Bounce alias (local part)", max_length=64)
    use_custom_servers = forms.BooleanField(
        label="Use custom email servers",
        required=False,
        help_text="Send through your own SMTP, Outlook or Gmail servers.",
    )

    def clean_catchall_domain(self) -> str:
        value = self.cleaned_data["catchall_domain"].strip().lower().lstrip("@")
        labels = value.split(".")
        if len(labels) < 2 or not all(
            label and len(label) < 64 and label.replace("-", "").isalnum()
            for label in labels
        ):
            raise forms.ValidationError("Enter a domain such as company.com.")
        return value

    def _clean_local(self, name: str) -> str:
        value = self.cleaned_data[name].strip()
        if not value or any(c in value for c in '@ <>()[]\\,;:"\r\n'):
            raise forms.ValidationError(
                "Enter only the part before the @, e.g. notifications."
            )
        return value

    def clean_default_from(self) -> str:
        return self._clean_local("default_from")

    def clean_bounce_alias(self) -> str:
        return self._clean_local("bounce_alias")


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
