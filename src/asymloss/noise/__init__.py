"""asymloss.noise"""
