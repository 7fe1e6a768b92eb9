"""GET notifications/subscriptions/: who hears about what (read-only; they are managed in the admin).

Reading them needs the view permission on subscriptions: they name addresses and receivers. The
webhook secret is never shown here.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from scheduler_app import selectors
from scheduler_app.api.pagination import StandardPagination
from scheduler_app.models import NotificationSubscription

VIEW_SUBSCRIPTIONS = "scheduler_app.view_notificationsubscription"


class CanViewSubscriptions(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(VIEW_SUBSCRIPTIONS))


class SubscriptionSerializer(serializers.ModelSerializer):
    """A subscription without its secret."""

    class Meta:
        model = NotificationSubscription
        fields = [field.name for field in NotificationSubscription._meta.concrete_fields if field.name != "secret"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="Notification subscriptions (no secrets)"),
    retrieve=extend_schema(summary="Read a notification subscription (no secret)"),
)
class SubscriptionViewSet(viewsets.GenericViewSet):
    permission_classes = [CanViewSubscriptions]
    pagination_class = StandardPagination
    serializer_class = SubscriptionSerializer
    queryset = NotificationSubscription.objects.all()

    def get_queryset(self):
        return selectors.notification_subscription_list()

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SubscriptionSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(SubscriptionSerializer(self.get_object()).data)
