from django.urls import include, path
from notes import views

notes = [
    path("notes/", views.notes),
    path("notes/count/", views.count),
    path("notes/stream/", views.stream),
    path("notes/astream/", views.astream),
    path("notes/export/", views.export),
    path("notes/<str:token>/", views.note),
]

urlpatterns = [
    path("t/<str:tenant>/", include(notes)),
    path("", include(notes)),
]
