"""The TAXII 2.1 server, mounted at /taxii2/ by ``isn.urls`` (``messaging.interop.taxii``)."""

from __future__ import annotations

from django.urls import path

from messaging.interop import taxii

collection = "api/collections/<str:collection_id>/"

urlpatterns = [
    path("", taxii.DiscoveryView.as_view(), name="taxii-discovery"),
    path("api/", taxii.ApiRootView.as_view(), name="taxii-api-root"),
    path("api/collections/", taxii.CollectionsView.as_view(), name="taxii-collections"),
    path(collection, taxii.CollectionView.as_view(), name="taxii-collection"),
    path(f"{collection}objects/", taxii.ObjectsView.as_view(), name="taxii-objects"),
    path(f"{collection}objects/<str:object_id>/", taxii.ObjectsView.as_view(), name="taxii-object"),
    path(f"{collection}objects/<str:object_id>/versions/", taxii.VersionsView.as_view(), name="taxii-versions"),
    path(f"{collection}manifest/", taxii.ManifestView.as_view(), name="taxii-manifest"),
]
