"""asymloss.theory"""
