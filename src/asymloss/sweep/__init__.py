"""asymloss.sweep"""
