"""asymloss.models"""
