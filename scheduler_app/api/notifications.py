"""GET notifications/subscriptions/: who hears about what (read-only; they are managed in the admin).

Reading them needs SUBSCRIPTION_VIEW (services.permissions): they name addresses and receivers. The
webhook secret is never shown here. Writes have no route: they answer 405.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from scheduler_app import selectors
from scheduler_app.api.views import NOT_FOUND, SchedulerViewMixin
from scheduler_app.models import NotificationSubscription
from scheduler_app.services import permissions as rules


class SubscriptionSerializer(serializers.ModelSerializer):
    """A subscription without its secret."""

    class Meta:
        model = NotificationSubscription
        fields = [field.name for field in NotificationSubscription._meta.concrete_fields if field.name != "secret"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="Notification subscriptions (no secrets)"),
    retrieve=extend_schema(
        summary="Read a notification subscription (no secret)",
        responses={200: SubscriptionSerializer, 404: NOT_FOUND},
    ),
)
class SubscriptionViewSet(SchedulerViewMixin, viewsets.GenericViewSet):
    required_permissions = {"list": rules.SUBSCRIPTION_VIEW, "retrieve": rules.SUBSCRIPTION_VIEW}
    serializer_class = SubscriptionSerializer
    queryset = NotificationSubscription.objects.all()

    def get_queryset(self):
        return selectors.notification_subscription_list()

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SubscriptionSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(SubscriptionSerializer(self.get_object()).data)
