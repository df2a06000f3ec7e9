from django.urls import include, path
from notes import views

notes = [
    path("notes/", views.notes),
    path("notes/count/", views.count),
    path("notes/<str:token>/", views.note),
]

urlpatterns = [
    path("t/<str:tenant>/", include(notes)),
    path("", include(notes)),
]
