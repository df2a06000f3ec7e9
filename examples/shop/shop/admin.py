from django.contrib import admin

from .models import Order, Product


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "total"]
    list_filter = ["customer"]
    search_fields = ["customer__username", "note"]


admin.site.register(Product)
