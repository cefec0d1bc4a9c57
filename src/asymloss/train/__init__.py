"""asymloss.train"""
