"""
The catalog: a read-heavy page of products, a product's page, and the form
that changes its price, which redirects to the product's page. Products
live on 'orders'; with its REPLICAS set, the pages are read from them, and
ReadYourWritesMiddleware makes the page after a change show the new price.
"""

from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .models import Product


def catalog(request):
    products = Product.objects.annotate(orders=Count("order")).order_by("name")[:100]
    return render(request, "shop/catalog.html", {"products": products})


def product(request, pk):
    return render(
        request, "shop/product.html", {"product": get_object_or_404(Product, pk=pk)}
    )


@require_POST
def set_price(request, pk):
    product = get_object_or_404(Product, pk=pk)
    product.price = int(request.POST["price"])
    product.save(update_fields=["price"])
    return redirect("product", pk=pk)
