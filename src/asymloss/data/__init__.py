"""asymloss.data"""
